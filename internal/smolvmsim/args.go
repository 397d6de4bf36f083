package smolvmsim

import (
	"fmt"
	"strings"
)

// A small clap-alike: smolvm is a clap program, so usage errors here use
// clap's wording and exit 2, and values may be given as "--flag v",
// "--flag=v" or "-e v".

type flagSpec struct {
	long, short string // "--name", "-e" (either may be empty)
	meta        string // "<NAME>"; empty for boolean flags
	multi       bool
	required    bool
}

type cmdSpec struct {
	usage       string // "smolvm machine exec [OPTIONS] --name <NAME> -- <COMMAND>..."
	flags       []flagSpec
	positionals []string // required positional names, e.g. "<SOURCE>"
	// command collects everything after "--" or after the positionals.
	command     bool
	commandMeta string
	help        string
}

type parsedArgs struct {
	values  map[string][]string // by long name (or short when no long)
	bools   map[string]bool
	pos     []string
	command []string
}

func (p *parsedArgs) one(key string) string {
	v := p.values[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func (p *parsedArgs) has(key string) bool {
	_, ok := p.values[key]
	return ok
}

func (f flagSpec) key() string {
	if f.long != "" {
		return f.long
	}
	return f.short
}

func (f flagSpec) display() string {
	name := f.long
	if name == "" {
		name = f.short
	}
	if f.meta != "" {
		return name + " " + f.meta
	}
	return name
}

// usageError is a command-line error: clap text on stderr, exit 2.
type usageError struct{ text string }

func (e *usageError) Error() string { return e.text }

func (c *cmdSpec) usageErr(format string, args ...any) *usageError {
	msg := fmt.Sprintf(format, args...)
	return &usageError{text: "error: " + msg + "\n\nUsage: " + c.usage + "\n\nFor more information, try '--help'.\n"}
}

// helpRequested is returned for -h/--help: print help, exit 0.
type helpRequested struct{ text string }

func (h *helpRequested) Error() string { return h.text }

func (c *cmdSpec) lookup(arg string) (flagSpec, bool) {
	for _, f := range c.flags {
		if arg == f.long || arg == f.short {
			return f, true
		}
	}
	return flagSpec{}, false
}

func (c *cmdSpec) parse(args []string) (*parsedArgs, error) {
	p := &parsedArgs{values: map[string][]string{}, bools: map[string]bool{}}
	set := func(f flagSpec, v string) error {
		k := f.key()
		if !f.multi && len(p.values[k]) > 0 {
			return c.usageErr("the argument '%s' cannot be used multiple times", f.display())
		}
		p.values[k] = append(p.values[k], v)
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest := args[i+1:]
			if c.command {
				p.command = append(p.command, rest...)
			} else {
				p.pos = append(p.pos, rest...)
			}
			i = len(args)
		case a == "-h" || a == "--help":
			return nil, &helpRequested{text: c.helpText()}
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			f, ok := c.lookup(name)
			if !ok {
				return nil, c.usageErr("unexpected argument '%s' found", name)
			}
			if f.meta == "" {
				if hasVal {
					return nil, c.usageErr("unexpected value '%s' for '%s' found; no more were expected", val, f.display())
				}
				p.bools[f.key()] = true
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return nil, c.usageErr("a value is required for '%s' but none was supplied", f.display())
				}
				i++
				val = args[i]
			}
			if err := set(f, val); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			// Short cluster: -it, -e K=V, -eK=V.
			for j := 1; j < len(a); j++ {
				f, ok := c.lookup("-" + string(a[j]))
				if !ok {
					return nil, c.usageErr("unexpected argument '-%c' found", a[j])
				}
				if f.meta == "" {
					p.bools[f.key()] = true
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, c.usageErr("a value is required for '%s' but none was supplied", f.display())
					}
					i++
					val = args[i]
				}
				if err := set(f, val); err != nil {
					return nil, err
				}
				break
			}
		default:
			if c.command && len(p.pos) >= len(c.positionals) {
				p.command = append(p.command, args[i:]...)
				i = len(args)
				continue
			}
			if len(p.pos) >= len(c.positionals) {
				return nil, c.usageErr("unexpected argument '%s' found", a)
			}
			p.pos = append(p.pos, a)
		}
	}
	var missing []string
	for _, f := range c.flags {
		if f.required && !p.has(f.key()) {
			missing = append(missing, f.display())
		}
	}
	for i := len(p.pos); i < len(c.positionals); i++ {
		missing = append(missing, c.positionals[i])
	}
	if c.command && len(p.command) == 0 {
		missing = append(missing, c.commandMeta)
	}
	if len(missing) > 0 {
		return nil, c.usageErr("the following required arguments were not provided:\n  %s", strings.Join(missing, "\n  "))
	}
	return p, nil
}

func (c *cmdSpec) helpText() string {
	var b strings.Builder
	b.WriteString(c.help + "\n\nUsage: " + c.usage + "\n\nOptions:\n")
	for _, f := range c.flags {
		names := f.long
		if f.short != "" && f.long != "" {
			names = f.short + ", " + f.long
		} else if f.short != "" {
			names = f.short
		}
		if f.meta != "" {
			names += " " + f.meta
		}
		b.WriteString("  " + names + "\n")
	}
	b.WriteString("  -h, --help\n")
	return b.String()
}
