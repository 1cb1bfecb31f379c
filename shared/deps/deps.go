package deps

import (
	_ "github.com/MicahParks/keyfunc/v3"
	_ "github.com/aws/aws-lambda-go/lambda"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/sqs"
	_ "github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/hashicorp/vault/api"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
