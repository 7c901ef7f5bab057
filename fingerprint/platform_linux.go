package fingerprint

// platformTasks returns the sources of the running system.
func platformTasks(o *options) []task { return linuxTasks(newOSFS("/"), o) }
