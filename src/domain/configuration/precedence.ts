import {
  CONFIG_CATEGORIES,
  CONFIG_DEFAULTS,
  CONFIG_SCOPES,
  type ConfigCategory,
  type ConfigScope,
  fieldSchema,
  isSealedKey,
  publicKeyOf,
  secretsOf,
} from './categories';

/**
 * Precedence: the values of one category at each scope that applies to a chat (tenant < agent <
 * platform < chat) folded into the effective values, most specific first, and the scope each key
 * came from (`default` when no scope sets it). Pure.
 */

/** Where an effective value came from. */
export type ConfigSource = ConfigScope | 'default';

/** The values one scope sets for one category (as stored: secrets sealed). */
export interface ConfigLayer {
  scope: ConfigScope;
  values: Record<string, unknown>;
}

export interface ResolvedCategory {
  values: Record<string, unknown>;
  /** Per public key (a secret under its plain name): the scope its value came from. */
  sources: Record<string, ConfigSource>;
}

export type EffectiveConfig = { [C in ConfigCategory]: ResolvedCategory };

/** A stored key's value is usable: the key is known and the value valid (else it is skipped). */
function usable(category: ConfigCategory, key: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (isSealedKey(category, key)) return typeof value === 'string';
  return fieldSchema(category, key)?.safeParse(value).success ?? false;
}

/** One category's effective values from its layers (any order; each scope at most once). */
export function resolveCategory(category: ConfigCategory, layers: readonly ConfigLayer[]): ResolvedCategory {
  const values: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const [key, value] of Object.entries(CONFIG_DEFAULTS[category])) {
    values[key] = value;
    sources[key] = 'default';
  }
  const ordered = [...layers].sort((a, b) => CONFIG_SCOPES.indexOf(a.scope) - CONFIG_SCOPES.indexOf(b.scope));
  for (const layer of ordered) {
    for (const [key, value] of Object.entries(layer.values)) {
      if (!usable(category, key, value)) continue;
      const publicKey = publicKeyOf(category, key);
      // A secret set here replaces both forms inherited from a less specific scope.
      const secret = secretsOf(category).find((s) => s.path.length === 0 && s.plain === publicKey);
      if (secret && sources[publicKey] !== layer.scope) {
        delete values[secret.plain];
        delete values[secret.sealed];
      }
      values[key] = value;
      sources[publicKey] = layer.scope;
    }
  }
  return { values, sources };
}

/** Every category's effective values; `layersOf` gives a category's layers. */
export function resolveConfig(
  layersOf: (category: ConfigCategory) => readonly ConfigLayer[],
): EffectiveConfig {
  return Object.fromEntries(
    CONFIG_CATEGORIES.map((c) => [c, resolveCategory(c, layersOf(c))]),
  ) as EffectiveConfig;
}
