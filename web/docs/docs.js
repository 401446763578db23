// Starts Swagger UI on /openapi.json. A separate file (not inline) so the page's
// Content-Security-Policy can forbid inline scripts. No validator badge, no external fetch.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    tryItOutEnabled: false,
    persistAuthorization: false,
    displayRequestDuration: true,
  });
});
