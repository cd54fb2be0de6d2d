import { randomBytes } from 'node:crypto';

import { type Config, ConfigError, configIssue } from '../config';
import { developmentSecret } from '../services/privateServers';
import { SecretBox } from './secretBox';

/**
 * The server's box for stored secrets (agents' LLM API keys and webhook secrets), keyed by `MAIHIVE_SECRET_KEY`, with
 * `MAIHIVE_SECRET_KEY_PREVIOUS` still opening secrets sealed before a rotation. Outside production a
 * missing key is generated once per data dir, so a restart still opens what was sealed before.
 */
export function serverSecretBox(config: Config): SecretBox {
  return SecretBox.fromSecret(serverSecretKey(config), config.previousSecretKeys);
}

function serverSecretKey(config: Config): string {
  if (config.secretKey) return config.secretKey;
  if (config.env === 'production') {
    throw new ConfigError([configIssue('MAIHIVE_SECRET_KEY', 'is required when NODE_ENV=production')]);
  }
  return developmentSecret(config.dataDir, 'secret-key', () => randomBytes(48).toString('base64url'));
}
