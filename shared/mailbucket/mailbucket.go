// Package mailbucket adapts S3 for the mail intake: it reads the raw mails
// SES's receipt rule stored and writes the attachments kept from them.
package mailbucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/keybuzz/keybuzz-amazon/shared/awsenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// API is the part of the S3 client the bucket uses.
type API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Bucket reads and writes mail objects.
type Bucket struct {
	api API
}

// New wraps an S3 client.
func New(api API) *Bucket { return &Bucket{api: api} }

// NewClient builds an S3 client configured from the function's environment
// (shared/awsenv; AWS_ENDPOINT_URL_S3 points it at the emulator locally);
// pathStyle addresses buckets in the path, as the emulator on loopback
// needs.
func NewClient(ctx context.Context, pathStyle bool) (*s3.Client, error) {
	cfg, err := awsenv.Config(nil)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		o.BaseEndpoint = awsenv.Endpoint(nil, "S3")
	}), nil
}

// Get reads an object of at most max bytes. marketplace.ErrMailTooLarge:
// the object is larger (not read); marketplace.ErrMailMissing: no such key.
func (b *Bucket) Get(ctx context.Context, bucket, key string, max int64) ([]byte, error) {
	out, err := b.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		var api smithy.APIError
		if errors.As(err, &nsk) || (errors.As(err, &api) && api.ErrorCode() == "NoSuchKey") {
			return nil, fmt.Errorf("s3://%s/%s: %w", bucket, key, marketplace.ErrMailMissing)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if out.ContentLength != nil && *out.ContentLength > max {
		return nil, fmt.Errorf("s3://%s/%s is %d bytes: %w", bucket, key, *out.ContentLength, marketplace.ErrMailTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(out.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("s3://%s/%s is above %d bytes: %w", bucket, key, max, marketplace.ErrMailTooLarge)
	}
	return body, nil
}

// Put writes an object (server-side encrypted, as the bucket's default).
func (b *Bucket) Put(ctx context.Context, bucket, key, contentType string, body []byte) error {
	_, err := b.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}
