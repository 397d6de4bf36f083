package smolvmsim

import (
	"reflect"
	"strings"
	"testing"
)

func TestArgParser(t *testing.T) {
	p, err := execSpec.parse([]string{"--name=m", "-e", "A=1", "-eB=2", "--env", "C=3", "-it", "--timeout", "5m", "--", "ls", "--name", "-e"})
	if err != nil {
		t.Fatal(err)
	}
	if p.one("--name") != "m" || !reflect.DeepEqual(p.values["--env"], []string{"A=1", "B=2", "C=3"}) ||
		!p.bools["--interactive"] || !p.bools["--tty"] || p.one("--timeout") != "5m" ||
		!reflect.DeepEqual(p.command, []string{"ls", "--name", "-e"}) {
		t.Fatalf("%+v", p)
	}
	p, err = cpSpec.parse([]string{"--mode", "0600", "/a", "m:/b", "--uid", "1"})
	if err != nil || !reflect.DeepEqual(p.pos, []string{"/a", "m:/b"}) || p.one("--uid") != "1" {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range [][]string{{"--name"}, {"--name", "a", "--"}, {"--name", "a", "-x", "--", "ls"}, {"--name", "a", "--tty=yes", "ls"}} {
		_, err := execSpec.parse(bad)
		if u, ok := err.(*usageError); !ok || !strings.Contains(u.text, "Usage: smolvm machine exec") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]string{"30s": "30s", "5m": "5m0s", "1h": "1h0m0s", "1h 30m": "1h30m0s", "500ms": "500ms"} {
		d, err := parseTimeout(in)
		if err != nil || d.String() != want {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
	for _, in := range []string{"", "30", "soon", "-1s", "0s"} {
		if _, err := parseTimeout(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
