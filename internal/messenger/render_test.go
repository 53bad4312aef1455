package messenger

import (
	"strings"
	"testing"
	"time"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "hello"},
		{"tab\tand\nnewline", "tab\tand\nnewline"},
		{"esc \x1b[31mred\x1b[0m", `esc \x1b[31mred\x1b[0m`},
		{"csi \x1b[2J clear", `csi \x1b[2J clear`},
		{"bell\a cr\r del\x7f", `bell\x07 cr\x0d del\x7f`},
		{"rlo \u202eevil", `rlo \u202eevil`},
		{"c1 csi \u009b31m", `c1 csi \u009b31m`},
		{"zero width \u200b joiner \u200d", `zero width \u200b joiner \u200d`},
		{"line sep \u2028", `line sep \u2028`},
		{"bad utf8 \xff\xfe", `bad utf8 \xff\xfe`},
		{"tag \U000e0041", `tag \U000e0041`},
		{"unicode ok: héllo 世界 🙂 \ufffd", "unicode ok: héllo 世界 🙂 \ufffd"},
		{"", ""},
	}
	for _, tt := range tests {
		got := Sanitize(tt.in)
		if got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\x1b\u009b\u202e\r") {
			t.Errorf("Sanitize(%q) = %q still holds a raw control", tt.in, got)
		}
	}
}

func fixedClock() time.Time { return time.Date(2024, 6, 22, 15, 4, 5, 0, time.Local) }

func TestRenderMessage(t *testing.T) {
	plain := renderer{timestamps: true, now: fixedClock}
	color := renderer{color: true, timestamps: true, now: fixedClock}
	noTime := renderer{now: fixedClock}
	tests := []struct {
		name   string
		r      renderer
		sender string
		text   string
		group  bool
		want   string
	}{
		{"direct", plain, "alice", "hi bob", false, "[15:04:05] alice: hi bob"},
		{"direct colour stays plain", color, "alice", "hi", false, "[15:04:05] alice: hi"},
		{"group", plain, "alice", "hi all", true, "[15:04:05] [group] alice: hi all"},
		{"group colour", color, "alice", "hi all", true, "\x1b[32m[15:04:05] [group] alice: hi all\x1b[0m"},
		{"no timestamps", noTime, "bob", "yo", false, "bob: yo"},
		{"multi-line", plain, "bob", "one\ntwo\n\tthree", false,
			"[15:04:05] bob: one\n                two\n                \tthree"},
		{"multi-line group colour", color, "al", "a\nb", true,
			"\x1b[32m[15:04:05] [group] al: a\x1b[0m\n\x1b[32m" + strings.Repeat(" ", len("[15:04:05] [group] al: ")) + "b\x1b[0m"},
		{"hostile text and name", noTime, "ev\x1bil", "\x1b]0;title\a\u202e", false, `ev\x1bil: \x1b]0;title\x07\u202e`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.message(tt.sender, tt.text, tt.group); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRenderCarbon(t *testing.T) {
	plain := renderer{timestamps: true, now: fixedClock}
	color := renderer{color: true, timestamps: true, now: fixedClock}
	noTime := renderer{now: fixedClock}
	tests := []struct {
		name           string
		r              renderer
		sender, target string
		text           string
		mine           bool
		want           string
	}{
		{"own", plain, "alice", "bob", "hi bob", true, "[15:04:05] you → bob (other session): hi bob"},
		{"colour stays plain", color, "alice", "bob", "hi", true, "[15:04:05] you → bob (other session): hi"},
		{"no timestamps", noTime, "alice", "bob", "yo", true, "you → bob (other session): yo"},
		{"multi-line", plain, "alice", "bob", "one\ntwo", true,
			"[15:04:05] you → bob (other session): one\n" + strings.Repeat(" ", runeCount("[15:04:05] you → bob (other session): ")) + "two"},
		{"hostile target and text", noTime, "alice", "b\x1b[2Jb", "\x1b]0;t\a\u202e", true, `you → b\x1b[2Jb (other session): \x1b]0;t\x07\u202e`},
		{"another sender named", noTime, "ev\x1bil", "bob", "x", false, `ev\x1bil → bob (other session): x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.carbon(tt.sender, tt.target, tt.text, tt.mine); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPrinterWholeLinesAfterPrompt(t *testing.T) {
	var b strings.Builder
	p := &printer{w: &b}
	p.prompt("target: ")
	p.line("[group] bob: hi")
	p.line("next")
	p.close()
	p.line("dropped after close")
	want := "target: \n[group] bob: hi\nnext\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestSanitizeEmojiSequences: ZWJ and VS16 pass inside an emoji sequence
// only; bidi overrides and other controls stay escaped next to them.
func TestSanitizeEmojiSequences(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"ZWJ sequence", "dev 👩‍💻 here", "dev 👩‍💻 here"},
		{"family", "👨‍👩‍👧‍👦", "👨‍👩‍👧‍👦"},
		{"VS16 heart", "love ❤️", "love ❤️"},
		{"ZWJ with VS16", "🏳️‍🌈 flag", "🏳️‍🌈 flag"},
		{"skin tone and ZWJ", "👩🏽‍🚀", "👩🏽‍🚀"},
		{"keycap", "1️⃣ first", "1️⃣ first"},
		{"ZWJ between letters", "a\u200db", `a\u200db`},
		{"ZWJ at the end", "👩\u200d", `👩\u200d`},
		{"ZWJ before a letter", "👩\u200dx", `👩\u200dx`},
		{"two ZWJ", "👩\u200d\u200d💻", `👩\u200d\u200d💻`},
		{"lone VS16", "\ufe0f", `\ufe0f`},
		{"VS16 after a letter", "a\ufe0f", `a\ufe0f`},
		{"bidi override inside", "👩‍💻\u202etxt.exe", `👩‍💻\u202etxt.exe`},
		{"isolate and ZWJ", "\u2066👩‍💻\u2069", `\u2066👩‍💻\u2069`},
		{"escape after emoji", "❤️\x1b[2J", `❤️\x1b[2J`},
		{"ZWJ before a control", "👩\u200d\x1b[31m", `👩\u200d\x1b[31m`},
		{"zero width space", "👩\u200b💻", `👩\u200b💻`},
	} {
		got := Sanitize(tt.in)
		if got != tt.want {
			t.Errorf("%s: Sanitize(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\x1b\u202e\u2066\u2069\u200b") {
			t.Errorf("%s: Sanitize(%q) = %q still holds a raw control", tt.name, tt.in, got)
		}
	}
}
