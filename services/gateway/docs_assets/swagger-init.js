// Starts Swagger UI on the gateway's own OpenAPI document (a file, not an inline script, so
// the Content-Security-Policy needs no exception). Same-origin requests carry the session
// cookie set by POST /api/v1/login.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // no call to validator.swagger.io
});
