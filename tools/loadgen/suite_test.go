package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The suite compares three chat scenarios with the floor relay: each
// floor run comes right before ours with the same parameters, at the
// issue's sizes (and small ones with --quick).
func TestSuiteCompares(t *testing.T) {
	for _, quick := range []bool{false, true} {
		steps := suiteSteps(quick, 1<<20, 1<<20, "/tmp", "c", "k")
		var compared []string
		for i, st := range steps {
			if st.compare == "" {
				if st.floor {
					t.Errorf("%s: floor step outside a comparison", st.name)
				}
				continue
			}
			if st.msg == nil {
				t.Fatalf("%s: compared step without message parameters", st.name)
			}
			if !st.floor {
				continue
			}
			ours := steps[i+1]
			if ours.floor || ours.compare != st.compare || *ours.msg != *st.msg || st.name != "floor: "+ours.name || st.kind != ours.kind {
				t.Errorf("floor step %q is not followed by ours: %q", st.name, ours.name)
			}
			compared = append(compared, st.compare)
		}
		want := []string{"dm 100x2000 flood", "dm 100x500 @10000/s", "group 100x500 @100/s"}
		if quick {
			want = []string{"dm 20x200 flood", "dm 20x50 @1000/s", "group 20x100 @100/s"}
		}
		if strings.Join(compared, "|") != strings.Join(want, "|") {
			t.Errorf("quick %v: compared %q, want %q", quick, compared, want)
		}
		if quick {
			continue
		}
		for _, st := range steps {
			switch st.compare {
			case "dm 100x500 @10000/s":
				if p := st.msg; p.Group || p.Clients != 100 || p.Rate != 10000 {
					t.Errorf("dm paced: %+v", p)
				}
			case "group 100x500 @100/s":
				if p := st.msg; !p.Group || p.Rate != 100 || p.Senders*p.Messages != 500 {
					t.Errorf("group paced: %+v", p)
				}
			}
		}
	}
}

func TestSelectSteps(t *testing.T) {
	all := suiteSteps(true, 1<<20, 1<<20, "/tmp", "c", "k")
	names := func(steps []step) string {
		var n []string
		for _, st := range steps {
			n = append(n, st.name)
		}
		return strings.Join(n, "|")
	}
	if got := selectSteps(all, nil); len(got) != len(all) {
		t.Errorf("no --only: %d of %d steps", len(got), len(all))
	}
	want := "floor: dm 20x200 flood|dm 20x200 flood|floor: dm 20x50 @1000/s|dm 20x50 @1000/s|" +
		"floor: group 20x100 @100/s|group 20x100 @100/s"
	if got := names(selectSteps(all, []string{"floor"})); got != want {
		t.Errorf("--only floor: %s\nwant %s", got, want)
	}
	want = "floor: dm 20x200 flood|dm 20x200 flood|floor: dm 20x50 @1000/s|dm 20x50 @1000/s|dm 100x20 flood|file 1MiB"
	if got := names(selectSteps(all, []string{"dm", "file"})); got != want {
		t.Errorf("--only dm,file: %s\nwant %s", got, want)
	}
	if got := names(selectSteps(all, []string{"group", "floor"})); strings.Count(got, "|") != 7 {
		t.Errorf("--only group,floor: %s", got)
	}
}

// Suite arguments: an unknown --only, and a floor comparison without the
// loadgen binary in --bin, are refused before any scenario runs.
func TestSuiteArgs(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "server"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--only", "bogus"}, `--only "bogus": want dm, group, idle, login, file, groupdl or floor`},
		{[]string{"--only", "floor"}, "no executable loadgen at " + filepath.Join(bin, "loadgen")},
		{[]string{"--only", "dm"}, "no executable loadgen"},
		{[]string{"--only", "group"}, "no executable loadgen"},
	} {
		out, err := runApp(t, append([]string{"suite", "--bin", bin, "--dir", dir, "--quick"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
		if strings.Contains(out, "== ") {
			t.Errorf("%v: a scenario ran:\n%s", c.args, out)
		}
	}
	// Without a floor step the loadgen binary is not needed: the suite
	// gets as far as starting the (failing) server.
	_, err := runApp(t, "suite", "--bin", bin, "--dir", dir, "--quick", "--only", "idle")
	if err == nil || strings.Contains(err.Error(), "loadgen") || !strings.Contains(err.Error(), "1 of 1 scenarios failed") {
		t.Errorf("--only idle: %v", err)
	}
	out, _ := runApp(t, "suite", "--help")
	for _, want := range []string{"floor: dm 100x500 @10000/s", "group 100x500 @100/s", "LOWER BOUND", "pass/MISS"} {
		if !strings.Contains(out, want) {
			t.Errorf("suite --help lacks %q", want)
		}
	}
}
