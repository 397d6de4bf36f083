package smolvm

import "strconv"

// Spellings of smolvm's live fork (src/cli/machine.rs StartCmd --forkable,
// ForkCmd, ForkReleaseCmd, DeleteCmd --cascade), kept apart from argv.go so
// the fork verbs change in one file.

const (
	subFork        = "fork"
	subForkRelease = "fork-release"

	flagForkable   = "--forkable"
	flagGolden     = "--golden"
	flagHold       = "--hold"
	flagCount      = "--count"
	flagNamePrefix = "--name-prefix"
	flagCascade    = "--cascade"
)

// Driver verbs of the fork operations (metrics, Error.Verb).
const (
	verbFork        = "fork"
	verbForkRelease = "fork_release"
)

// maxForkCount is smolvm's cap on one `fork --count`.
const maxForkCount = 1024

func startForkableArgv(name string) ([]string, error) {
	argv, err := startArgv(name)
	if err != nil {
		return nil, err
	}
	return append(argv, flagForkable), nil
}

// forkArgv builds `machine fork`. One clone is named with --name; a batch
// (Count > 1) with --count and --name-prefix, smolvm naming the clones
// PREFIX-0 … PREFIX-(Count-1).
func forkArgv(req ForkRequest) ([]string, error) {
	if err := checkName(verbFork, req.Golden); err != nil {
		return nil, err
	}
	argv := []string{cmdMachine, subFork, flagGolden, req.Golden}
	switch {
	case req.Count < 0 || req.Count > maxForkCount:
		return nil, newUsageError(verbFork, "count out of range (1 to %d)", maxForkCount)
	case req.Count > 1:
		if req.Name != "" {
			return nil, newUsageError(verbFork, "a batch is named by its prefix, not a name")
		}
		// The longest clone name must be a valid machine name too.
		if err := checkName(verbFork, req.NamePrefix+"-"+strconv.Itoa(req.Count-1)); err != nil {
			return nil, err
		}
		argv = append(argv, flagCount, strconv.Itoa(req.Count), flagNamePrefix, req.NamePrefix)
	default:
		if req.NamePrefix != "" {
			return nil, newUsageError(verbFork, "one clone is named by its name, not a prefix")
		}
		if err := checkName(verbFork, req.Name); err != nil {
			return nil, err
		}
		argv = append(argv, flagName, req.Name)
	}
	if req.Hold {
		argv = append(argv, flagHold)
	}
	envArgs, err := forkEnvFlags(verbFork, req.Env)
	if err != nil {
		return nil, err
	}
	return append(argv, envArgs...), nil
}

func forkReleaseArgv(name string, env []EnvVar) ([]string, error) {
	argv, err := nameOnlyArgv(verbForkRelease, subForkRelease, name)
	if err != nil {
		return nil, err
	}
	envArgs, err := forkEnvFlags(verbForkRelease, env)
	if err != nil {
		return nil, err
	}
	return append(argv, envArgs...), nil
}

// deleteCascadeArgv deletes a golden and every clone forked from it
// (clones first). --cascade implies no confirmation.
func deleteCascadeArgv(name string) ([]string, error) {
	argv, err := nameOnlyArgv(verbDelete, subDelete, name)
	if err != nil {
		return nil, err
	}
	return append(argv, flagCascade), nil
}

// forkEnvFlags renders fork parameters as -e K=V. smolvm writes them, one
// per line, to the clone's /etc/smolvm/fork-env, so a value cannot hold a
// line break (smolvm's validate_fork_env).
func forkEnvFlags(verb string, env []EnvVar) ([]string, error) {
	for _, e := range env {
		if err := checkEnvVar(verb, e); err != nil {
			return nil, err
		}
		if containsLineBreak(e.Value) {
			return nil, newUsageError(verb, "fork parameter %s contains a line break", e.Name)
		}
	}
	return envFlags(verb, env)
}

func containsLineBreak(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return true
		}
	}
	return false
}
