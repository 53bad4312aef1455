package wire

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckUserName(t *testing.T) {
	for _, c := range []struct {
		name string
		want error
	}{
		{"alice", nil}, {"A_1", nil}, {strings.Repeat("x", 15), nil},
		{"", ErrUserName}, {strings.Repeat("x", 16), ErrUserName}, {"a b", ErrUserName}, {"a<", ErrUserName}, {"é", ErrUserName},
		{"Admin", ErrReservedName}, {"NEW_TARGET", ErrReservedName},
	} {
		if err := CheckUserName(c.name); !errors.Is(err, c.want) {
			t.Errorf("CheckUserName(%q) = %v, want %v", c.name, err, c.want)
		}
	}
	if FoldName("AlIce") != "alice" || FoldName("bob") != "bob" {
		t.Fatal("FoldName")
	}
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		pw string
		ok bool
	}{
		{"12345678", true}, {strings.Repeat("p", 72), true}, {strings.Repeat("é", 36), true},
		{"1234567", false}, {strings.Repeat("p", 73), false}, {"pass word", false}, {"pass\tword", false},
		{"password\x00", false}, {"\xffpassword", false}, {"pass\u202eword", false},
	} {
		if err := CheckPassword(c.pw); (err == nil) != c.ok {
			t.Errorf("CheckPassword(%q) = %v", c.pw, err)
		}
	}
}

func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a/../b", `C:\x\y.txt`, "evil\u202etxt.exe", "a\x1b[31mb", strings.Repeat("日", 200) + ".pdf", " .hidden. "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, max := range []int{32, 200, 255} {
			got := CleanFileName(in, max)
			switch {
			case got == "" || got == "." || got == "..":
				t.Fatalf("CleanFileName(%q) = %q", in, got)
			case !utf8.ValidString(got), len(got) > max, strings.ContainsAny(got, "/\\\x00\n\r\t\x1b\u202e"):
				t.Fatalf("CleanFileName(%q, %d) = %q", in, max, got)
			case strings.HasPrefix(got, ".") || strings.HasSuffix(got, " "):
				t.Fatalf("CleanFileName(%q) = %q: hidden or padded", in, got)
			case CleanFileName(got, max) != got:
				t.Fatalf("not idempotent: %q -> %q -> %q", in, got, CleanFileName(got, max))
			}
		}
	})
}
