package licensetest

// GuardLen returns how many request ids the server's replay cache
// remembers, for tests that bound its memory.
func GuardLen(s *Server) int { return s.guard.Len() }
