//go:build !linux

package execapi

// growPipe is Linux-only (F_SETPIPE_SZ); elsewhere pipes keep their size.
func growPipe(any, int) {}
