import type { LlmPriceTable, TokenPrice } from '../config';

/**
 * The installation's per-model LLM price table (`LLM_PRICES`) and the one function that reads it,
 * so where prices come from (env today, hierarchical configuration later) changes in one place.
 */

export type { LlmPriceTable, TokenPrice };

/**
 * The price of one call to `model`: the agent's own price when it has one, else the table's entry
 * for the model, else the table's `*`, else none (cost 0).
 */
export function priceFor(
  table: LlmPriceTable,
  model: string,
  agentPrice?: TokenPrice,
): TokenPrice | undefined {
  return agentPrice ?? table[model] ?? table['*'];
}

/** Cost of one call, rounded to the 6 decimals `llm_usage.cost` (numeric(14, 6)) keeps. */
export function costOf(
  price: TokenPrice | undefined,
  promptTokens: number,
  completionTokens: number,
): number {
  if (!price) return 0;
  const cost = (promptTokens * price.prompt + completionTokens * price.completion) / 1000;
  return Math.round(cost * 1e6) / 1e6;
}
