import type {KeySpec} from '../../lib/key-spec.js'

export type {KeySpec} from '../../lib/key-spec.js'

export function describeKeySpec(spec: KeySpec): string {
  return spec.type === 'ecdsa' ? `ECDSA ${spec.curve}` : `RSA ${spec.size}`
}

export function keySpecFromSettings(settings: {key_type: 'ecdsa' | 'rsa'; rsa_key_size: 2048 | 3072 | 4096; elliptic_curve: 'P-256' | 'P-384'}): KeySpec {
  return settings.key_type === 'rsa' ? {type: 'rsa', size: settings.rsa_key_size} : {type: 'ecdsa', curve: settings.elliptic_curve}
}
