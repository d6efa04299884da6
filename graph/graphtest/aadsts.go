package graphtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// aadError is an Entra token-endpoint error before rendering: the AADSTS
// number, the OAuth error, the HTTP status and the description text that
// follows "AADSTSnnnn: ".
type aadError struct {
	code   int
	oauth  string
	status int
	desc   string
}

// OAuth error names and the statuses Entra pairs them with: invalid_client
// is 401, the others 400 (graph-api.md §4.4).
const (
	oauthInvalidClient        = "invalid_client"
	oauthInvalidRequest       = "invalid_request"
	oauthInvalidScope         = "invalid_scope"
	oauthUnauthorizedClient   = "unauthorized_client"
	oauthUnsupportedGrantType = "unsupported_grant_type"
	oauthInvalidResource      = "invalid_resource"
	oauthTemporarilyUnavail   = "temporarily_unavailable"
)

func newAADError(code int, oauth, desc string) *aadError {
	status := http.StatusBadRequest
	if oauth == oauthInvalidClient {
		status = http.StatusUnauthorized
	}
	return &aadError{code: code, oauth: oauth, status: status, desc: desc}
}

// aadTime formats the timestamp used in error bodies: "2016-01-09 02:02:12Z".
func aadTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// assertionTime formats times in AADSTS700024 the way Entra prints them,
// with seven fractional digits.
func assertionTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

type aadErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// render produces Entra's error body: the description carries the AADSTS
// code and, after CRLFs, the trace id, correlation id and timestamp.
func (e *aadError) render(now time.Time, host, traceID, correlationID string) apiResponse {
	ts := aadTime(now)
	body := aadErrorBody{
		Error: e.oauth,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.desc, traceID, correlationID, ts),
		ErrorCodes:    []int{e.code},
		Timestamp:     ts,
		TraceID:       traceID,
		CorrelationID: correlationID,
		ErrorURI:      fmt.Sprintf("https://%s/error?code=%d", host, e.code),
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return apiResponse{status: e.status, contentType: "application/json; charset=utf-8", body: b}
}

// Constructors for the errors the token endpoint produces itself. The
// descriptions are the documented ones (graph-api.md §4.4) where recorded.

func errTenantNotFound(tenant string) *aadError {
	return newAADError(90002, oauthInvalidRequest, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant))
}

func errTenantInvalid(tenant string) *aadError {
	return newAADError(900023, oauthInvalidRequest, fmt.Sprintf("Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", tenant))
}

// errTenantNotAllowed is AADSTS9001023; the documentation records only its
// meaning ("isn't supported over the /common or /consumers endpoints").
func errTenantNotAllowed() *aadError {
	return newAADError(9001023, oauthInvalidRequest, "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
}

func errMissingParam(name string) *aadError {
	return newAADError(900144, oauthInvalidRequest, fmt.Sprintf("The request body must contain the following parameter: '%s'.", name))
}

func errUnsupportedGrant(grant string) *aadError {
	return newAADError(70003, oauthUnsupportedGrantType, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant))
}

func errPostOnly(method string) *aadError {
	return newAADError(900561, oauthInvalidRequest, fmt.Sprintf("The endpoint only accepts POST requests. Received a %s request.", method))
}

func errAppNotFound(clientID string) *aadError {
	return newAADError(700016, oauthUnauthorizedClient, fmt.Sprintf("Application with identifier '%s' was not found in the directory 'graphtest'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID))
}

func errNoCredential() *aadError {
	return newAADError(7000218, oauthInvalidClient, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

// errTwoCredentials answers a request that authenticates in more than one
// way. RFC 6749 §2.3 forbids it; Entra's exact reply is not recorded, so the
// 7000218 code is reused with a description that names the actual problem.
func errTwoCredentials() *aadError {
	return newAADError(7000218, oauthInvalidClient, "The request body must contain only one of the following parameters: 'client_assertion' or 'client_secret' (including HTTP Basic authentication).")
}

func errBadAssertionType(t string) *aadError {
	return newAADError(50027, oauthInvalidRequest, fmt.Sprintf("Invalid JWT token. The client_assertion_type '%s' is not supported; use 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.", t))
}

func errInvalidSecret(clientID string) *aadError {
	return newAADError(7000215, oauthInvalidClient, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID))
}

func errExpiredSecret(clientID string) *aadError {
	return newAADError(7000222, oauthInvalidClient, fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", clientID))
}

func errInvalidScope(scope string) *aadError {
	return newAADError(70011, oauthInvalidScope, fmt.Sprintf("The provided value for the input parameter 'scope' isn't valid. The scope '%s' isn't valid.", scope))
}

func errMultipleResources(scope string) *aadError {
	return newAADError(700022, oauthInvalidScope, fmt.Sprintf("The provided value for the input parameter scope isn't valid because it contains more than one resource. Scope %s isn't valid.", scope))
}

func errMalformedJWT(detail string) *aadError {
	return newAADError(50027, oauthInvalidRequest, "JWT token is invalid or malformed. "+detail)
}

func errBadJWTType() *aadError {
	return newAADError(5002727, oauthInvalidRequest, "Invalid JWT header type specified, must be 'JWT' or 'http://openid.net/specs/jwt/1.0'.")
}

func errNoThumbprint() *aadError {
	return newAADError(5002723, oauthInvalidRequest, "Invalid JWT token. No certificate thumbprint specified in token header.")
}

func errKeyNotRegistered(thumbprintHex, clientID string) *aadError {
	return newAADError(700027, oauthInvalidClient, fmt.Sprintf("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments if you are not using the global cloud.]", thumbprintHex, clientID))
}

func errBadSignature() *aadError {
	return newAADError(700027, oauthInvalidClient, "Client assertion failed signature validation.")
}

func errTimeRange(now, nbf, exp time.Time) *aadError {
	return newAADError(700024, oauthInvalidClient, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .", assertionTime(now), assertionTime(nbf), assertionTime(exp)))
}

func errSubjectMismatch(sub, iss string) *aadError {
	return newAADError(50048, oauthInvalidClient, fmt.Sprintf("Subject mismatches Issuer claim in the client assertion. Subject = '%s', Issuer = '%s'.", sub, iss))
}

// errAssertionAppMismatch is AADSTS700021, which Entra returns when the
// assertion's iss/sub (equal to each other) name another app than client_id.
func errAssertionAppMismatch() *aadError {
	return newAADError(700021, oauthInvalidClient, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .")
}

func errAudience(aud, expected string) *aadError {
	return newAADError(50027, oauthInvalidRequest, fmt.Sprintf("Invalid JWT token. The token has an unexpected audience '%s'; expected '%s'.", aud, expected))
}

// errReplayed answers a reused jti. Entra's reply to a replayed assertion is
// not documented anywhere the research found; AADSTS50013 (InvalidAssertion,
// "Assertion is invalid because of various reasons") is the documented code
// closest in meaning, sent as invalid_client because client authentication
// is what failed.
func errReplayed(jti string) *aadError {
	return newAADError(50013, oauthInvalidClient, fmt.Sprintf("Assertion is invalid because of various reasons - the client assertion with jti '%s' was already used.", jti))
}

func errFederatedIssuer(iss string) *aadError {
	return newAADError(700211, oauthInvalidClient, fmt.Sprintf("No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", iss))
}

func errFederatedAudience(aud string) *aadError {
	return newAADError(700212, oauthInvalidClient, fmt.Sprintf("No matching federated identity record found for presented assertion audience '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", aud))
}

func errFederatedSubject(sub string) *aadError {
	return newAADError(700213, oauthInvalidClient, fmt.Sprintf("No matching federated identity record found for presented assertion subject '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", sub))
}

func errResourceNotFound(resource, tenant string) *aadError {
	return newAADError(500011, oauthInvalidResource, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenant))
}

func errTransient(status int) *aadError {
	e := newAADError(90033, oauthTemporarilyUnavail, "A transient error has occurred. Please try again.")
	e.status = status
	return e
}

// faultError maps a scripted TokenFault to the error Entra returns for that
// AADSTS code.
func (s *Server) faultError(f TokenFault) *aadError {
	now := s.now()
	var e *aadError
	switch f.AADSTS {
	case 90002:
		e = errTenantNotFound(s.cfg.TenantID)
	case 900023:
		e = errTenantInvalid(s.cfg.TenantID)
	case 9001023:
		e = errTenantNotAllowed()
	case 900144:
		e = errMissingParam("scope")
	case 70003:
		e = errUnsupportedGrant("password")
	case 700016:
		e = errAppNotFound(s.cfg.ClientID)
	case 7000218:
		e = errNoCredential()
	case 7000215:
		e = errInvalidSecret(s.cfg.ClientID)
	case 7000222:
		e = errExpiredSecret(s.cfg.ClientID)
	case 70011:
		e = errInvalidScope(s.cfg.GraphScope)
	case 700022:
		e = errMultipleResources(s.cfg.GraphScope)
	case 50027:
		e = errMalformedJWT("")
	case 700027:
		e = errBadSignature()
	case 700024:
		e = errTimeRange(now, now.Add(-20*time.Minute), now.Add(-10*time.Minute))
	case 50048:
		e = errSubjectMismatch("sub", s.cfg.ClientID)
	case 700021:
		e = errAssertionAppMismatch()
	case 50013:
		e = errReplayed(newGUID())
	case 7000112:
		e = newAADError(7000112, oauthUnauthorizedClient, fmt.Sprintf("Application '%s'(graphrelay) is disabled.", s.cfg.ClientID))
	case 700211:
		e = errFederatedIssuer("https://issuer.invalid")
	case 700212:
		e = errFederatedAudience("api://other")
	case 700213:
		e = errFederatedSubject("system:serviceaccount:default:other")
	case 500011:
		e = errResourceNotFound(s.cfg.graphResource(), s.cfg.TenantID)
	case 90033:
		e = errTransient(http.StatusServiceUnavailable)
	default:
		e = newAADError(f.AADSTS, oauthInvalidRequest, "Injected failure.")
	}
	if f.Status != 0 {
		e.status = f.Status
	}
	return e
}
