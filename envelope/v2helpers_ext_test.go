package envelope_test

import "github.com/licensekit/licensekit-go/envelope"

// testEndpoint is the endpoint the tests seal for and post to.
const testEndpoint = "begin_session"

// sealV seals plaintext for testEndpoint at the current time.
func sealV(s envelope.Sealer, apiKey string, plaintext []byte) (string, envelope.ReplyOpener, error) {
	sd, err := s.Seal(envelope.Request{APIKey: apiKey, Endpoint: testEndpoint}, plaintext)
	return sd.Data, sd.Reply, err
}

// openV opens data as posted to testEndpoint with key apiKey.
func openV(o envelope.Opener, apiKey, data string) ([]byte, envelope.ReplySealer, error) {
	op, err := o.Open(envelope.Incoming{Key: apiKey, Data: data, Endpoint: testEndpoint})
	if err != nil {
		return nil, nil, err
	}
	return op.Plaintext, op.Reply, nil
}
