package main

import (
	"strings"
	"testing"
)

// Only machine verbs count: a resync's ls and the version check name no
// Bottle.
func TestMachineCallSeconds(t *testing.T) {
	text := `# HELP smolvm_command_duration_seconds Duration of smolvm CLI invocations by driver verb.
# TYPE smolvm_command_duration_seconds histogram
smolvm_command_duration_seconds_bucket{verb="copy_in",le="+Inf"} 1
smolvm_command_duration_seconds_sum{verb="copy_in"} 0.5
smolvm_command_duration_seconds_count{verb="copy_in"} 1
smolvm_command_duration_seconds_bucket{verb="create",le="+Inf"} 1
smolvm_command_duration_seconds_sum{verb="create"} 0.25
smolvm_command_duration_seconds_count{verb="create"} 1
smolvm_command_duration_seconds_bucket{verb="exec",le="+Inf"} 2
smolvm_command_duration_seconds_sum{verb="exec"} 1.25
smolvm_command_duration_seconds_count{verb="exec"} 2
smolvm_command_duration_seconds_bucket{verb="list",le="+Inf"} 1
smolvm_command_duration_seconds_sum{verb="list"} 9
smolvm_command_duration_seconds_count{verb="list"} 1
smolvm_command_duration_seconds_bucket{verb="version",le="+Inf"} 1
smolvm_command_duration_seconds_sum{verb="version"} 9
smolvm_command_duration_seconds_count{verb="version"} 1
# TYPE smolvm_command_failures_total counter
smolvm_command_failures_total{class="timeout",verb="exec"} 1
`
	got, err := textMachineCallSeconds(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Errorf("textMachineCallSeconds = %v, want 2 (copy_in + create + exec)", got)
	}
	if _, err := textMachineCallSeconds(strings.NewReader(`smolvm_command_duration_seconds_sum{verb="exec"}` + "\n")); err == nil {
		t.Error("a sample without a value was accepted")
	}
}
