package fingerprint

func platformTasks(o *options) []task { return linuxTasks(newOSFS("/"), o) }
