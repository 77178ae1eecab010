/**
 * The key a certificate is made for: ECDSA P-256 by default, as Let's Encrypt recommends. A
 * plain type here at the bottom so that the store, the issuers and the certificate manager share
 * it without importing each other (src/services/certificates/key-spec.ts re-exports it).
 */
export type KeySpec =
  | {type: 'ecdsa'; curve: 'P-256' | 'P-384'}
  | {type: 'rsa'; size: 2048 | 3072 | 4096}
