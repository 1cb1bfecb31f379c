package keybuzzamazon

import (
	"slices"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// The HTTP API: the routes of samFunctions, payload 2.0 on the $default
// stage, the KeyBuzz JWT authorizer on all but the OAuth callback, and CORS
// for the KeyBuzz front end.

// apiRoutes are the routes of every row of samFunctions, by function id.
func apiRoutes() map[apiRoute]string {
	all := map[apiRoute]string{}
	for _, f := range samFunctions {
		for _, r := range f.routes {
			all[r] = f.id
		}
	}
	return all
}

func TestTemplateRoutes(t *testing.T) {
	tmpl := loadTemplate(t)
	routes := routes(t, tmpl)
	want := apiRoutes()
	if len(routes) != len(want) {
		t.Errorf("template.yaml has %d routes, want %d: %v", len(routes), len(want), keys(routes))
	}
	for wantRoute, wantFunction := range want {
		key := wantRoute.method + " " + wantRoute.path
		t.Run(key, func(t *testing.T) {
			got, ok := routes[key]
			if !ok {
				t.Fatalf("no function serves %s", key)
			}
			if got.Function != wantFunction {
				t.Errorf("%s reaches %s, want %s", key, got.Function, wantFunction)
			}
			if r, _ := cfn.AsRef(got.Event.ApiId); r != httpAPIID {
				t.Errorf("ApiId = %v, want !Ref %s", got.Event.ApiId, httpAPIID)
			}
			if got.Event.PayloadFormatVersion != "2.0" {
				t.Errorf("PayloadFormatVersion = %v, want \"2.0\"", got.Event.PayloadFormatVersion)
			}
			if (got.Authorizer != "") != wantRoute.authorized {
				t.Errorf("authorizer = %q, want authorized=%v", got.Authorizer, wantRoute.authorized)
			}
		})
	}

	api := httpAPI(t, tmpl)
	if api.StageName != nil && api.StageName != "$default" {
		t.Errorf("StageName = %v: a named stage prefixes rawPath, keep $default", api.StageName)
	}
	jwtAuth, ok := api.Auth.Authorizers[api.Auth.DefaultAuthorizer]
	if api.Auth.DefaultAuthorizer == "" || !ok {
		t.Fatalf("DefaultAuthorizer %q is not among the authorizers", api.Auth.DefaultAuthorizer)
	}
	if jwtAuth.IdentitySource != "$request.header.Authorization" {
		t.Errorf("IdentitySource = %q", jwtAuth.IdentitySource)
	}
	if r, _ := cfn.AsRef(jwtAuth.JwtConfiguration.Issuer); r != "JwtIssuer" {
		t.Errorf("issuer = %v, want !Ref JwtIssuer", jwtAuth.JwtConfiguration.Issuer)
	}
	if len(jwtAuth.JwtConfiguration.Audience) != 1 || !cfn.IsRefTo(jwtAuth.JwtConfiguration.Audience[0], "JwtAudience") {
		t.Errorf("audience = %v, want [!Ref JwtAudience]", jwtAuth.JwtConfiguration.Audience)
	}
	if len(api.CorsConfiguration.AllowOrigins) != 1 || !cfn.IsRefTo(api.CorsConfiguration.AllowOrigins[0], "FrontendOrigin") {
		t.Errorf("CORS AllowOrigins = %v, want [!Ref FrontendOrigin]", api.CorsConfiguration.AllowOrigins)
	}
	for _, h := range []string{"Authorization", "Content-Type"} {
		if !slices.Contains(api.CorsConfiguration.AllowHeaders, h) {
			t.Errorf("CORS AllowHeaders %v lacks %s", api.CorsConfiguration.AllowHeaders, h)
		}
	}
	// oauth/start's answer sets the browser binding cookie: the frontend
	// (another origin of the site) calls it with credentials.
	if !api.CorsConfiguration.AllowCredentials {
		t.Error("CORS AllowCredentials is false: a credentialed fetch of oauth/start would not keep the binding cookie")
	}
}

// Every route is throttled, the public ones (no JWT) tighter than the default.
func TestTemplateThrottlesPublicRoutes(t *testing.T) {
	tmpl := loadTemplate(t)
	api := httpAPI(t, tmpl)
	def := api.DefaultRouteSettings
	if def.ThrottlingBurstLimit <= 0 || def.ThrottlingRateLimit <= 0 {
		t.Fatalf("DefaultRouteSettings %+v: every route needs a throttle", def)
	}
	for key, r := range routes(t, tmpl) {
		if r.Authorizer != "" {
			continue
		}
		rs, ok := api.RouteSettings[key]
		if !ok || rs.ThrottlingBurstLimit <= 0 || rs.ThrottlingRateLimit <= 0 ||
			rs.ThrottlingBurstLimit > def.ThrottlingBurstLimit || rs.ThrottlingRateLimit > def.ThrottlingRateLimit {
			t.Errorf("public route %s: RouteSettings %+v (%v), want a throttle under the default %+v", key, rs, ok, def)
		}
	}
	for key := range api.RouteSettings {
		if _, ok := routes(t, tmpl)[key]; !ok {
			t.Errorf("RouteSettings names %q, which is no route of the API", key)
		}
	}
}

// TestTemplateCallbackIsTheOnlyRouteWithoutAuthorizer names the open routes
// (Amazon's redirect and the Appstore log-in, both browser navigations)
// here, apart from samFunctions, on purpose: opening a route takes two edits.
func TestTemplateCallbackIsTheOnlyRouteWithoutAuthorizer(t *testing.T) {
	tmpl := loadTemplate(t)
	api := httpAPI(t, tmpl)
	var open []string
	for key, r := range routes(t, tmpl) {
		if r.Authorizer == "" {
			open = append(open, key)
			continue
		}
		if _, ok := api.Auth.Authorizers[r.Authorizer]; !ok {
			t.Errorf("%s names authorizer %q, which the HTTP API does not define", key, r.Authorizer)
		}
	}
	want := []string{"GET /api/v1/marketplaces/amazon/oauth/callback", "GET /api/v1/marketplaces/amazon/oauth/login"}
	slices.Sort(open)
	if !slices.Equal(open, want) {
		t.Errorf("routes without authorizer = %v, want %v", open, want)
	}
}
