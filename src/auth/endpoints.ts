/**
 * Where a tenant's authorization server answers, relative to its FHIR base (which is the issuer),
 * and how the CapabilityStatement announces it (SMART App Launch: rest.security with the
 * oauth-uris extension). No express here: the interaction layer uses it.
 */
import type { CapabilityStatementRestSecurity } from 'fhir/r4.js';

export const AUTH_PATHS = {
  authorize: '/auth/authorize',
  token: '/auth/token',
  introspect: '/auth/introspect',
  revoke: '/auth/revoke',
  jwks: '/auth/jwks',
} as const;

export function smartSecurity(baseUrl: string): CapabilityStatementRestSecurity {
  const uri = (name: string, path: string) => ({ url: name, valueUri: `${baseUrl}${path}` });
  return {
    cors: true,
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'OAuth2 using SMART-on-FHIR profile (see .well-known/smart-configuration)' }],
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [uri('authorize', AUTH_PATHS.authorize), uri('token', AUTH_PATHS.token), uri('introspect', AUTH_PATHS.introspect), uri('revoke', AUTH_PATHS.revoke)],
      },
    ],
  };
}
