package cliflags

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func testApp() *cli.App {
	return &cli.App{
		Name: "client",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user"},
			&cli.BoolFlag{Name: "signup"},
			&cli.StringFlag{Name: "to"},
		},
		Commands: []*cli.Command{
			{Name: "upload", Flags: []cli.Flag{&cli.StringFlag{Name: "to"}, &cli.BoolFlag{Name: "quiet"}}},
			{Name: "admin"},
		},
	}
}

// TestReorder checks which arguments move: a command's flags (with their
// values) before its arguments, global flags before the command, nothing
// after "--", nothing for a command kept verbatim.
func TestReorder(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"client", "upload", "a.pdf", "--to", "bob"}, []string{"client", "upload", "--to", "bob", "a.pdf"}},
		{[]string{"client", "upload", "a.pdf", "--to=bob", "b"}, []string{"client", "upload", "--to=bob", "a.pdf", "b"}},
		{[]string{"client", "--user", "upload", "upload", "a", "--quiet", "b"}, []string{"client", "--user", "upload", "upload", "--quiet", "a", "b"}},
		{[]string{"client", "upload", "a", "--user", "al", "--signup", "--to", "bob"}, []string{"client", "--user", "al", "--signup", "upload", "--to", "bob", "a"}},
		{[]string{"client", "upload", "a", "--", "--to", "b"}, []string{"client", "upload", "--", "a", "--to", "b"}},
		{[]string{"client", "upload", "a", "--to", "bob", "--", "-v"}, []string{"client", "upload", "--to", "bob", "--", "a", "-v"}},
		{[]string{"client", "upload", "-", "--to", "bob"}, []string{"client", "upload", "--to", "bob", "-"}},
		{[]string{"client", "upload", "it", "is", "-5", "--to", "bob"}, []string{"client", "upload", "--to", "bob", "--", "it", "is", "-5"}},
		{[]string{"client", "upload", "--to", "bob", "a", "-x"}, []string{"client", "upload", "--to", "bob", "--", "a", "-x"}},
		{[]string{"client", "upload", "--bogus", "a", "--to", "bob"}, []string{"client", "upload", "--bogus", "--to", "bob", "a"}},
		{[]string{"client", "admin", "kick", "--to", "x"}, []string{"client", "admin", "kick", "--to", "x"}},
		{[]string{"client", "junk", "--to", "x"}, []string{"client", "junk", "--to", "x"}},
		{[]string{"client"}, []string{"client"}},
	} {
		if got := Reorder(testApp(), c.in, "admin"); !slices.Equal(got, c.want) {
			t.Errorf("Reorder(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestSize checks the units a size takes and that String reads back.
func TestSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "10MB": 10_000_000, "1GiB": 1 << 30, "512KiB": 512 << 10, "1.5 GiB": 3 << 29, "2kb": 2000,
	} {
		var s Size
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, s, err, want)
			continue
		}
		var back Size
		if err := back.Set(s.String()); err != nil || back != s {
			t.Errorf("%q: String %q reads back as %d, %v", in, s.String(), back, err)
		}
	}
	for _, in := range []string{"-1", "lots", "", "1 ZiB", "99999999999999999999"} {
		var s Size
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) accepted: %d", in, s)
		}
	}
	if s := Size(1 << 30); s.String() != "1GiB" {
		t.Errorf("1 GiB shows as %q", s.String())
	}
}
