package awsenv

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestConfig(t *testing.T) {
	lambdaEnv := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		region  string
	}{
		{name: "lambda", env: lambdaEnv, region: "eu-west-1"},
		{name: "default region", env: map[string]string{"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, region: "us-east-1"},
		{name: "no region", env: map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, wantErr: "AWS_REGION"},
		{name: "no credentials", env: map[string]string{"AWS_REGION": "eu-west-1"}, region: "eu-west-1", wantErr: "AWS_ACCESS_KEY_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			cfg, err := Config(getenv)
			if tt.region == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Config: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.Region != tt.region {
				t.Fatalf("Config: region %q, %v", cfg.Region, err)
			}
			creds, err := cfg.Credentials.Retrieve(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("credentials: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || creds.AccessKeyID != tt.env["AWS_ACCESS_KEY_ID"] || creds.SecretAccessKey != tt.env["AWS_SECRET_ACCESS_KEY"] || creds.SessionToken != tt.env["AWS_SESSION_TOKEN"] {
				t.Fatalf("credentials %+v, %v", creds, err)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"AWS_ENDPOINT_URL": "http://all"}, "http://all"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_SQS": "http://sqs"}, "http://sqs"},
		{map[string]string{"AWS_ENDPOINT_URL_S3": "http://s3"}, ""}, // another service's
	}
	for _, tt := range tests {
		got := aws.ToString(Endpoint(func(k string) string { return tt.env[k] }, "SQS"))
		if got != tt.want {
			t.Errorf("Endpoint(SQS) with %v = %q, want %q", tt.env, got, tt.want)
		}
	}
}
