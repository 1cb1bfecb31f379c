// Command hello is a minimal aws-lambda-go function for rie's test.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Name string `json:"name"`
}

func main() {
	lambda.Start(func(ctx context.Context, e event) (map[string]string, error) {
		if e.Name == "" {
			return nil, fmt.Errorf("no name")
		}
		log.Printf("hello-log name=%s", e.Name)
		return map[string]string{"greeting": "hello " + e.Name}, nil
	})
}
