package query

// HasPipe reports whether a query (analyst or LogsQL) has a top-level pipe,
// i.e. a '|' outside quotes and regex literals.
func HasPipe(q string) bool {
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '/' && (i == 0 || q[i-1] == ':' || q[i-1] == '~'):
			quote = '/'
		case c == '|':
			if i+1 < len(q) && q[i+1] == '|' { // "||" is OR in the analyst language
				i++
				continue
			}
			return true
		}
	}
	return false
}
