// The interactive API reference at /docs: Swagger UI (npm swagger-ui-dist, served from this origin, loaded
// before this script) on the server's own /openapi.json. Nothing is fetched from anywhere else: no validator
// badge, no remote configuration.

interface SwaggerUiBundle {
  (options: Record<string, unknown>): unknown;
  presets: { apis: unknown };
}

declare const SwaggerUIBundle: SwaggerUiBundle;

SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // Swagger UI would otherwise ask validator.swagger.io about the document.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  // The tests (and anyone curious) can tell when the document has been read and drawn.
  onComplete: () => {
    document.body.dataset.loaded = "";
  },
});
