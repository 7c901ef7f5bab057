package fingerprint

import (
	"context"
	"errors"
	"os"
)

// genericTasks are the sources every OS has: host_name from os.Hostname and ip_address. Collect
// reports the other wire fields as Unsupported where nothing more is implemented.
func genericTasks(o *options) []task {
	return []task{hostTask(), ipTask(o)}
}

// hostTask reads host_name with os.Hostname (uname(2) on Unix, GetComputerNameEx on Windows).
func hostTask() task {
	return task{name: "host", inline: true, run: func(context.Context) taskResult { return one(hostComponent(os.Hostname())) }}
}

// firmwareFills are the components of a firmware task, all strong: mb_serial, product_uuid and
// board_serial, with their sources.
func firmwareFills(mb, product, board string) []Component {
	return []Component{{Name: NameMBSerial, Source: mb, Strength: Strong},
		{Name: NameProductUUID, Source: product, Strength: Strong},
		{Name: NameBoardSerial, Source: board, Strength: Strong}}
}

func one(c Component) taskResult { return taskResult{comps: []Component{c}} }

func unsupported(name, why string, s Strength) Component {
	return missing(name, "", s, Unsupported, errors.New(why))
}
