// Package logtemplate turns log lines into templates by masking the parts
// that vary between lines of the same kind: numbers, hex strings, UUIDs and
// other ids, and quoted strings. It is a deliberately simple miner: one pass,
// no allocation beyond the result, stable output for equal input.
package logtemplate

// MaxLen bounds the length of a template; longer bodies are cut.
const MaxLen = 256

// Placeholder replaces a masked token.
const Placeholder = "<*>"

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
func isWordByte(c byte) bool {
	return isHex(c) || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '_' || c == '-' || c == '.' || c == ':' || c == '/'
}

// Append appends the template of line to dst.
func Append(dst []byte, line string) []byte {
	start := len(dst)
	for i := 0; i < len(line) && len(dst)-start < MaxLen; {
		c := line[i]
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(line) && line[j] != c {
				j++
			}
			if j < len(line) {
				dst = append(dst, Placeholder...)
				i = j + 1
				continue
			}
			dst = append(dst, c)
			i++
		case isWordByte(c):
			j := i
			digits, hexOnly := 0, true
			for j < len(line) && isWordByte(line[j]) {
				if isDigit(line[j]) {
					digits++
				}
				if !isHex(line[j]) && line[j] != '-' {
					hexOnly = false
				}
				j++
			}
			tok := line[i:j]
			if variable(tok, digits, hexOnly) {
				dst = append(dst, Placeholder...)
			} else {
				dst = append(dst, tok...)
			}
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	if len(dst)-start > MaxLen {
		dst = dst[:start+MaxLen]
	}
	return dst
}

// variable reports whether a token varies between lines: it holds a digit
// (a number, or letters and digits mixed like an id: user-42,
// 10.0.0.1:5432), or is a hex string or UUID of 8 or more characters.
func variable(tok string, digits int, hexOnly bool) bool {
	if hexOnly && len(tok) >= 8 {
		return true
	}
	return digits > 0
}

// Of returns the template of line.
func Of(line string) string { return string(Append(nil, line)) }
