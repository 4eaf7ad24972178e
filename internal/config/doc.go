// Package config owns Mamori's configuration: one struct tree read from a
// YAML file (strict: an unknown key is an error naming the key and its line),
// then environment variables (MAMORI_SECTION_KEY), then command-line flags.
// Precedence is flag > env > file > default.
package config
