"""The custom resource API: kinds, their OpenAPI schemas and the CRDs generated from them."""
