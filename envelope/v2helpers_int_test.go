package envelope

// testEndpoint is the endpoint the internal tests seal for and post to.
const testEndpoint = "begin_session"

func sealV(s Sealer, apiKey string, plaintext []byte) (string, ReplyOpener, error) {
	sd, err := s.Seal(Request{APIKey: apiKey, Endpoint: testEndpoint}, plaintext)
	return sd.Data, sd.Reply, err
}

func openV(o Opener, apiKey, data string) ([]byte, ReplySealer, error) {
	op, err := o.Open(Incoming{Key: apiKey, Data: data, Endpoint: testEndpoint})
	if err != nil {
		return nil, nil, err
	}
	return op.Plaintext, op.Reply, nil
}
