import { z } from 'zod';

/** Most rows one page may ask for (API.md § Conventions). */
export const MAX_PAGE_LIMIT = 100;
/** Rows per page when `limit` is not given. */
export const DEFAULT_PAGE_LIMIT = 20;
// Far beyond any real listing; keeps the OFFSET a safe integer.
const MAX_PAGE = 1_000_000;

/**
 * `?page&limit` of offset-paginated lists, to spread into a query schema:
 * `z.object({ ...pageQuery, status: ... })`. Query values arrive as strings, hence the coercion.
 */
export const pageQuery = {
  /** 1-based page number. Default 1. */
  page: z.coerce.number().int().min(1).max(MAX_PAGE).default(1),
  /** Rows per page, 1..100. Default 20. */
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT),
};

export interface PageRequest {
  page: number;
  limit: number;
}

/** `data.pagination` of a list response. */
export interface Pagination {
  page: number;
  limit: number;
  total: number;
  pages: number;
}

/** LIMIT/OFFSET of a page, for repository functions. */
export function pageWindow({ page, limit }: PageRequest): { limit: number; offset: number } {
  return { limit, offset: (page - 1) * limit };
}

export function pagination({ page, limit }: PageRequest, total: number): Pagination {
  return { page, limit, total, pages: Math.ceil(total / limit) };
}

/** Schema of `data.pagination`, for the documentation of list routes. */
export const PaginationSchema = z.object({
  page: z.number().int(),
  limit: z.number().int(),
  total: z.number().int(),
  pages: z.number().int(),
});
