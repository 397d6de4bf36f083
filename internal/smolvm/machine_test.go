package smolvm

import (
	"reflect"
	"testing"
)

func TestParseMachine(t *testing.T) {
	data := []byte(`{
  "name": "m1",
  "state": "running",
  "cpus": 2,
  "memory_mib": 4096,
  "pid": 4242,
  "mounts": 0,
  "created_at": "2026-08-01T12:00:00Z",
  "image": "node:22",
  "labels": {"owner": "ns/a"},
  "network": true,
  "some_future_key": {"x": [1, 2]}
}`)
	m, err := parseMachine(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Machine{Name: "m1", State: StateRunning, Image: "node:22", CPUs: 2, MemoryMiB: 4096, PID: 4242,
		CreatedAt: "2026-08-01T12:00:00Z", Labels: map[string]string{"owner": "ns/a"}, Network: true}
	if !reflect.DeepEqual(*m, want) {
		t.Fatalf("got %+v\nwant %+v", *m, want)
	}
}

func TestParseMachineNulls(t *testing.T) {
	m, err := parseMachine([]byte(`{"name":"m","state":"stopped","pid":null,"image":null,"created_at":1754049600,"labels":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.PID != 0 || m.Image != "" || m.CreatedAt != "1754049600" || m.Labels != nil || m.State != StateStopped {
		t.Fatalf("unexpected %+v", *m)
	}
}

func TestParseMachineRejects(t *testing.T) {
	for _, in := range []string{``, `[]`, `{}`, `{"name":"m"}`, `not json`, `{"name":"m","state":"running","cpus":"x"}`} {
		if _, err := parseMachine([]byte(in)); err == nil {
			t.Errorf("ParseMachine(%q) succeeded", in)
		}
	}
}

func TestParseMachineList(t *testing.T) {
	ms, err := parseMachineList([]byte("[]\n"))
	if err != nil || len(ms) != 0 || ms == nil {
		t.Fatalf("empty list: %v %v", ms, err)
	}
	ms, err = parseMachineList([]byte(`[{"name":"a","state":"created","pid":null},{"name":"b","state":"frozen","pid":7}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "a" || ms[0].State != StateCreated || ms[1].PID != 7 || ms[1].State != StateFrozen {
		t.Fatalf("unexpected %+v", ms)
	}
	if _, err := parseMachineList([]byte(`{"name":"a"}`)); err == nil {
		t.Fatal("object accepted as list")
	}
	for _, in := range []string{`[{"name":"a","state":"running"},{"name":"b"}]`, `[{"state":"running"}]`} {
		if _, err := parseMachineList([]byte(in)); err == nil {
			t.Errorf("ParseMachineList(%s) succeeded: a machine without a name or state read as absent", in)
		}
	}
}
