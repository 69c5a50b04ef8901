// Package flagenv defines command-line flags whose defaults come from
// environment variables, so every setting can be given either way (flags
// win). The usage text names the variable.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func usage(text, env string) string { return fmt.Sprintf("%s (env %s)", text, env) }

// String defines a string flag defaulting to $env, else def.
func String(fs *flag.FlagSet, p *string, name, env, def, text string) {
	if v, ok := os.LookupEnv(env); ok && v != "" {
		def = v
	}
	fs.StringVar(p, name, def, usage(text, env))
}

// Secret is String for values that must never be printed: the default
// shown in -help is masked.
func Secret(fs *flag.FlagSet, p *string, name, env, text string) {
	*p = os.Getenv(env)
	fs.Func(name, usage(text, env)+" [secret]", func(v string) error { *p = v; return nil })
}

// Integer is the integer kinds Int accepts.
type Integer interface {
	~int | ~int32 | ~int64 | ~uint32 | ~uint64
}

// Int defines an integer flag defaulting to $env, else def. A malformed
// environment value is reported by Parse as a bad flag would be.
func Int[T Integer](fs *flag.FlagSet, p *T, name, env string, def T, text string) {
	*p = def
	set := func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*p = T(n)
		return nil
	}
	fs.Func(name, fmt.Sprintf("%s (default %d)", usage(text, env), def), set)
	if v, ok := os.LookupEnv(env); ok && v != "" {
		if err := set(v); err != nil {
			envErrors = append(envErrors, fmt.Errorf("%s: %v", env, err))
		}
	}
}

// Bool defines a bool flag defaulting to $env, else def.
func Bool(fs *flag.FlagSet, p *bool, name, env string, def bool, text string) {
	fs.BoolVar(p, name, def, usage(text, env))
	if v, ok := os.LookupEnv(env); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErrors = append(envErrors, fmt.Errorf("%s=%q is not true or false", env, v))
			return
		}
		*p = b
	}
}

// Duration defines a duration flag defaulting to $env, else def.
func Duration(fs *flag.FlagSet, p *time.Duration, name, env string, def time.Duration, text string) {
	fs.DurationVar(p, name, def, usage(text, env))
	if v, ok := os.LookupEnv(env); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrors = append(envErrors, fmt.Errorf("%s=%q is not a duration like 30s", env, v))
			return
		}
		*p = d
	}
}

var envErrors []error

// Parse parses args and reports the first malformed environment value.
func Parse(fs *flag.FlagSet, args []string) error {
	if len(envErrors) > 0 {
		return envErrors[0]
	}
	return fs.Parse(args)
}
