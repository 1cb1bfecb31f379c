package relaymail

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLToText renders HTML as plain text: text nodes with entities decoded,
// a line break for each block element and <br>, list items prefixed "- ",
// link targets dropped, and nothing from <head>, <script>, <style> or
// comments. It never fails: a broken document gives what could be read.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := string(z.Text())
			// Collapse source whitespace as a browser does.
			t = strings.Join(strings.Fields(t), " ")
			if t == "" {
				continue
			}
			if b.Len() > 0 {
				last := b.String()[b.Len()-1]
				if last != '\n' && last != ' ' && !strings.HasPrefix(t, ",") && !strings.HasPrefix(t, ".") {
					b.WriteByte(' ')
				}
			}
			b.WriteString(t)
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title:
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
				continue
			}
			if skip > 0 {
				continue
			}
			switch a {
			case atom.Br:
				b.WriteByte('\n')
			case atom.P, atom.Div, atom.Tr, atom.Table, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
				atom.Ul, atom.Ol, atom.Blockquote, atom.Pre, atom.Hr, atom.Section, atom.Article, atom.Header, atom.Footer:
				if b.Len() > 0 && b.String()[b.Len()-1] != '\n' {
					b.WriteByte('\n')
				}
			case atom.Li:
				if tt == html.StartTagToken {
					b.WriteString("\n- ")
				}
			case atom.Td, atom.Th:
				if tt == html.EndTagToken {
					b.WriteByte(' ')
				}
			}
		}
	}
}
