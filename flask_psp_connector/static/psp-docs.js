/** psp-docs.js: starts Swagger UI on the page's OpenAPI document (no inline script needed). */
const root = document.getElementById("swagger-ui");
// validatorUrl: null keeps the page from calling an online validator.
window.SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true, validatorUrl: null });
