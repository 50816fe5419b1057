/**
 * Who is asking: the result of checking a request's access token, carried by every interaction
 * (InteractionContext.access). The token side (src/auth/tokens.ts) produces it; the policy side
 * (src/auth/policy.ts) decides with it what an interaction may see and do.
 */
export interface Access {
  /** The tenant the token was issued for; a token never reaches another tenant. */
  tenant: string;
  /** The OAuth client the token was issued to. */
  clientId: string;
  /** The granted scopes, as issued (SMART v1 `patient/*.read` and v2 `patient/Observation.rs?category=…`). */
  scopes: string[];
  /** The signed-in user's FHIR resource (`Practitioner/123`), from the openid fhirUser scope. */
  fhirUser?: string;
  /** The internal user id, when a user signed in (absent for backend-services tokens). */
  userId?: string;
  /** Launch context: the patient id patient/ scopes are bound to. */
  patient?: string;
  /** Launch context: the encounter id. */
  encounter?: string;
  /** The token's id (jti), for audit and revocation. */
  tokenId?: string;
}
