// Command migrate applies the schema migrations to DATABASE_URL (or -database-url).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
)

func main() {
	url := flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "migrate: DATABASE_URL or -database-url is required")
		os.Exit(2)
	}
	ran, err := migrate.Apply(context.Background(), *url)
	for _, n := range ran {
		fmt.Println("applied", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(ran) == 0 {
		fmt.Println("schema up to date")
	}
}
