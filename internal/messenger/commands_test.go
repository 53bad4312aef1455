package messenger

import (
	"strings"
	"testing"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		line string
		want input
	}{
		{"", input{kind: inputEmpty}},
		{"   \t", input{kind: inputEmpty}},
		{"\r", input{kind: inputEmpty}},
		{"hello bob", input{kind: inputMessage, text: "hello bob"}},
		{"hello bob\r", input{kind: inputMessage, text: "hello bob"}},
		{"  leading space kept", input{kind: inputMessage, text: "  leading space kept"}},
		{":quit:", input{kind: inputCommand, name: "quit"}},
		{":quit:\r", input{kind: inputCommand, name: "quit"}},
		{"  :QUIT:  ", input{kind: inputCommand, name: "quit"}},
		{":online:", input{kind: inputCommand, name: "online"}},
		{":new_target:", input{kind: inputCommand, name: "new_target"}},
		{":new_target: bob", input{kind: inputCommand, name: "new_target", arg: "bob"}},
		{":new_target:   bob  ", input{kind: inputCommand, name: "new_target", arg: "bob"}},
		{":quit: now", input{kind: inputCommand, name: "quit", arg: "now"}},
		{":x:", input{kind: inputCommand, name: "x"}},
		{":smile: hello", input{kind: inputMessage, text: ":smile: hello"}},
		{":)", input{kind: inputMessage, text: ":)"}},
		{":", input{kind: inputMessage, text: ":"}},
		{"::quit:", input{kind: inputMessage, text: ":quit:"}},
		{"::", input{kind: inputMessage, text: ":"}},
		{"see :help: for more", input{kind: inputMessage, text: "see :help: for more"}},
	}
	for _, tt := range tests {
		if got := parseInput(tt.line); got != tt.want {
			t.Errorf("parseInput(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestCommandTable(t *testing.T) {
	for _, name := range []string{"quit", "online", "new_target", "toggle", "status", "help", "upload", "download"} {
		c := lookupCommand(name)
		if c == nil {
			t.Fatalf("command %s missing", name)
		}
		if c.help == "" || c.run == nil {
			t.Errorf("command %s lacks help or handler", name)
		}
	}
	for _, name := range []string{"upload", "download"} {
		if strings.Contains(lookupCommand(name).help, "coming soon") {
			t.Errorf(":%s: help still says coming soon", name)
		}
	}
	if !lookupCommand("upload").takesArg || lookupCommand("download").takesArg {
		t.Error(":upload: takes PATH [NAME], :download: nothing")
	}
	if lookupCommand("nope") != nil {
		t.Error("unknown command found")
	}
}
