// Package awsenv is the AWS configuration of a Lambda function, read from
// the environment Lambda gives it: the region (AWS_REGION), the execution
// role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN) and, locally, an emulator's endpoint
// (AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL). It stands in for
// aws-sdk-go-v2/config's LoadDefaultConfig, whose credential chain (SSO,
// STS web identity, IMDS, shared files, processes) is of no use in Lambda
// and weighs about two megabytes in every bootstrap that links it.
package awsenv

import (
	"cmp"
	"context"
	"errors"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Config returns the configuration from getenv (nil: os.Getenv). The
// credentials are read on each retrieval (the SDK caches them).
func Config(getenv func(string) string) (aws.Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	region := cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		return aws.Config{}, errors.New("aws config: AWS_REGION is not set")
	}
	return aws.Config{
		Region: region,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return Credentials(getenv)
		})),
	}, nil
}

// Credentials are the execution role's credentials from getenv.
func Credentials(getenv func(string) string) (aws.Credentials, error) {
	c := aws.Credentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "environment"}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, errors.New("aws credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them for the execution role)")
	}
	return c, nil
}

// Endpoint is the endpoint set for service (its SDK id, e.g. "SQS", "S3")
// by AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL, as the SDK's own
// configuration reads them; nil when neither is set (the service's regional
// endpoint).
func Endpoint(getenv func(string) string, service string) *string {
	if getenv == nil {
		getenv = os.Getenv
	}
	key := "AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(service, " ", "_"))
	if v := cmp.Or(getenv(key), getenv("AWS_ENDPOINT_URL")); v != "" {
		return aws.String(v)
	}
	return nil
}
