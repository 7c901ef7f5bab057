// The offline activation page: upload a request file, download the reply
// file. The reply is fetched with the console's cookie and offered as a
// blob link; nothing is fetched from elsewhere.
"use strict";

(() => {
  const form = document.getElementById("offline-form");
  const input = document.getElementById("offline-file");
  const status = document.getElementById("offline-status");
  const result = document.getElementById("offline-result");
  const link = document.getElementById("offline-download");
  const summary = document.getElementById("offline-summary");
  document.getElementById("offline-url").textContent = location.origin + "/admin/offline/exchange";
  let url = "";

  const show = (text, bad) => {
    status.textContent = text;
    status.className = bad ? "bad-text" : "";
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.hidden = true;
    if (url) {
      URL.revokeObjectURL(url);
      url = "";
    }
    const file = input.files[0];
    if (!file) {
      show("Choose the request file first.", true);
      return;
    }
    show("Posting " + file.name + "…", false);
    let resp;
    try {
      resp = await fetch("/admin/offline/exchange", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: await file.text(),
        credentials: "same-origin",
      });
    } catch (e) {
      show("The console cannot reach the server: " + e.message, true);
      return;
    }
    if (!resp.ok) {
      let msg = "status " + resp.status;
      try {
        msg = (await resp.json()).error || msg;
      } catch (e) {
        // not JSON: keep the status
      }
      show(msg, true);
      return;
    }
    const text = await resp.text();
    const lines = text.split("\n").filter((l) => l.startsWith("Endpoint: ") || l.startsWith("Status: "));
    const answers = [];
    for (let i = 0; i + 1 < lines.length; i += 2) {
      answers.push(lines[i].slice(10) + " " + lines[i + 1].slice(8));
    }
    url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    link.href = url;
    summary.textContent = "(" + text.length + " bytes; " + answers.join(", ") + ")";
    result.hidden = false;
    show("Answered " + file.name + ". Carry the reply file back to the offline machine.", false);
  });
})();
