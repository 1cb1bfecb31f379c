package keybuzzamazon

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
)

// The functions' environment in AWS: every variable they need, no literal
// secret (they come from Vault or a dynamic reference), and every name the
// template refers to declared.

// secretLooking are values that must never be written in the template.
var secretLooking = map[string]*regexp.Regexp{
	"URL with a password": regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@{}$]+:[^@\s/{}$]+@`),
	"AWS access key":      regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),
	"private key":         regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY`),
	"LWA token":           regexp.MustCompile(`Atz[ar]\|`),
	"LWA client secret":   regexp.MustCompile(`amzn1\.oa2-cs\.`),
	"Vault token":         regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_-]{20,}`),
	"dev secret":          regexp.MustCompile(`(?i)dev-root|local-dev-jwt-secret`),
}

func TestTemplateNoLiteralSecrets(t *testing.T) {
	tmpl := loadTemplate(t)
	var raw any
	if err := json.Unmarshal(tmpl.JSON(), &raw); err != nil {
		t.Fatal(err)
	}
	cfn.WalkStrings(raw, "", func(where, s string) {
		for what, re := range secretLooking {
			if re.MatchString(s) {
				t.Errorf("%s: looks like a literal %s: %q", where, what, s)
			}
		}
	})

	dynamicRef := regexp.MustCompile(`^\{\{resolve:(secretsmanager|ssm-secure):\$\{([A-Za-z0-9]+)\}(:.*)?\}\}$`)
	sensitiveName := regexp.MustCompile(`SECRET|PASSWORD|PASSWD|PRIVATE|_KEY$|^VAULT_TOKEN$|^DATABASE_URL$`)
	for id, env := range allEffectiveEnv(t, tmpl) {
		db, _ := env["DATABASE_URL"].(map[string]any)
		sub, _ := db["Fn::Sub"].(string)
		m := dynamicRef.FindStringSubmatch(sub)
		if m == nil {
			t.Errorf("%s: DATABASE_URL = %v, want !Sub \"{{resolve:secretsmanager:${Param}...}}\"", id, env["DATABASE_URL"])
		} else if _, ok := tmpl.Parameters[m[2]]; !ok {
			t.Errorf("%s: DATABASE_URL's reference is built from %q, not a parameter", id, m[2])
		}
		for name, v := range env {
			if name == "DATABASE_URL" || !sensitiveName.MatchString(name) {
				continue
			}
			// Local-only variables are declared so sam local can set them,
			// and dropped in AWS.
			if !cfn.IsRefTo(v, "AWS::NoValue") {
				t.Errorf("%s: %s = %v; in AWS it must be !Ref AWS::NoValue (secrets come from Vault or a dynamic reference)", id, name, v)
			}
		}
		if env["VAULT_AUTH_METHOD"] != "aws" {
			t.Errorf("%s: VAULT_AUTH_METHOD = %v, want aws (Vault's AWS IAM auth)", id, env["VAULT_AUTH_METHOD"])
		}
	}
	for name, p := range tmpl.Parameters {
		if sensitiveName.MatchString(strings.ToUpper(name)) && !strings.HasSuffix(name, "Arn") && !strings.HasSuffix(name, "Key") && p.NoEcho != true {
			t.Errorf("parameter %s looks secret: pass an ARN instead, or set NoEcho", name)
		}
	}
}

func TestTemplateEnvironment(t *testing.T) {
	tmpl := loadTemplate(t)
	// The configuration table of README.md, as every function reads it in AWS.
	required := []string{
		"DATABASE_URL", "VAULT_ADDR", "VAULT_AUTH_METHOD", "VAULT_AWS_ROLE", "VAULT_KV_MOUNT",
		"AMAZON_SPAPI_APP_SOURCE", "AMAZON_VAULT_LAYOUT", "MARKETPLACE_POLL_INTERVAL_SECONDS", "POLL_LOOKBACK_DAYS",
		"AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE", "AUTH_JWKS_URL", "AUTH_TENANT_CLAIM",
		"FRONTEND_RETURN_URL", "AMAZON_LWA_TOKEN_URL", "AMAZON_SPAPI_ENDPOINT", "AMAZON_SELLER_CENTRAL_URL",
	}
	for id, env := range allEffectiveEnv(t, tmpl) {
		for _, name := range required {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: %s is not set", id, name)
			}
		}
	}
	if err := tmpl.CheckReferences(); err != nil {
		t.Errorf("%s: %v", templatePath, err)
	}
}

// The fallback poll period (docs/push.md's trade-off) has one default: the
// template's parameter, which polltenant receives, is config's.
func TestTemplatePollFallbackDefault(t *testing.T) {
	tmpl := loadTemplate(t)
	env := allEffectiveEnv(t, tmpl)[pollTenantID]
	param, ok := cfn.AsRef(env["POLL_FALLBACK_INTERVAL_SECONDS"])
	if !ok {
		t.Fatalf("polltenant's POLL_FALLBACK_INTERVAL_SECONDS = %v, want a !Ref to a parameter", env["POLL_FALLBACK_INTERVAL_SECONDS"])
	}
	p, ok := tmpl.Parameters[param]
	if !ok {
		t.Fatalf("POLL_FALLBACK_INTERVAL_SECONDS refers to %q, not a parameter", param)
	}
	if fmt.Sprint(p.Default) != strconv.Itoa(config.DefaultPollFallbackSeconds) {
		t.Errorf("parameter %s: Default %v, want config.DefaultPollFallbackSeconds (%d)", param, p.Default, config.DefaultPollFallbackSeconds)
	}
}
