package smolvmsim

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseRunuser(t *testing.T) {
	tests := []struct {
		args []string
		want runuserOpts
	}{
		{[]string{"-l", "node", "-c", "id; echo"}, runuserOpts{login: true, command: "id; echo", hasCommand: true, rest: []string{"node"}}},
		{[]string{"-", "node", "-c", "x"}, runuserOpts{login: true, command: "x", hasCommand: true, rest: []string{"node"}}},
		{[]string{"--login", "node", "--command=x"}, runuserOpts{login: true, command: "x", hasCommand: true, rest: []string{"node"}}},
		{[]string{"-u", "node", "--", "sh", "-c", "x", "-l"}, runuserOpts{user: "node", rest: []string{"sh", "-c", "x", "-l"}}},
		{[]string{"-unode", "--", "id"}, runuserOpts{user: "node", rest: []string{"id"}}},
		{[]string{"--user=node", "-m", "--", "id"}, runuserOpts{user: "node", preserve: true, rest: []string{"id"}}},
		{[]string{"-l", "-w", "A,B", "node"}, runuserOpts{login: true, whitelist: []string{"A", "B"}, rest: []string{"node"}}},
		{[]string{"-lc", "x", "node"}, runuserOpts{login: true, command: "x", hasCommand: true, rest: []string{"node"}}},
	}
	for _, tt := range tests {
		got, err := parseRunuser(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.args, *got, tt.want)
		}
	}
	for _, bad := range [][]string{{"-u", "node", "-l"}, {"-u", "node", "-c", "x"}, {"--bogus"}, {"-Z"}, {"-c"}} {
		if _, err := parseRunuser(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for args, want := range map[string]string{"-l node -c x": "node", "-u app -- id": "app", "-c x": "root"} {
		if got := runuserTarget(strings.Fields(args)); got != want {
			t.Errorf("target of %q = %q, want %q", args, got, want)
		}
	}
}

func TestPasswdAndGroups(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	gr := filepath.Join(dir, "group")
	if err := os.WriteFile(pw, []byte("root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\nbad:x:y:1::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gr, []byte("root:x:0:\nnode:x:1000:\ndocker:x:999:node,other\nwheel:x:10:other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := lookupUser(pw, "node")
	if err != nil || *e != (passwdEntry{name: "node", uid: 1000, gid: 1000, home: "/home/node", shell: "/bin/bash"}) {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := lookupUser(pw, "ghost"); err == nil {
		t.Fatal("ghost found")
	}
	if _, err := lookupUser(pw, "bad"); err == nil {
		t.Fatal("malformed entry accepted")
	}
	if g, err := userGroups(gr, "node", 1000); err != nil || !reflect.DeepEqual(g, []int{1000, 999}) {
		t.Fatalf("groups %v %v", g, err)
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4", "A=5=6"})
	if want := []string{"A=5=6", "B=3", "C=4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}
