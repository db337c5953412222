package rules

import (
	"fmt"
	"strings"
)

// Error is one problem in a rule file, at a position in it.
type Error struct {
	File string
	// Line and Column are 1-based; zero when the problem has no position
	// (an unreadable file).
	Line, Column int
	Msg          string
	// Snippet is the offending source line, empty when unknown.
	Snippet string
}

// Error formats the problem as "file:line:col: message" followed by the
// offending line and a caret under the column.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Snippet != "" {
		b.WriteString("\n | ")
		b.WriteString(e.Snippet)
		b.WriteString("\n | ")
		for i, r := range e.Snippet {
			if i >= e.Column-1 {
				break
			}
			if r == '\t' {
				b.WriteByte('\t')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('^')
	}
	return b.String()
}

// ErrorList is every problem found in a set of rule files, in file and
// position order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
