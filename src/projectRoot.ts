import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The directory holding MaiHive's `package.json`, found by walking up from this file: the same
 * answer from `src/` (tsx, jest) and from `dist/` (the compiled build), however deep the file sits.
 * Every path into the installation (migrations, package metadata) is resolved from here.
 */
function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'maihive'
    )
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`no maihive package.json above ${start}`);
  }
}

export const PROJECT_ROOT = findProjectRoot(__dirname);

/** A path inside the installation, e.g. `projectPath('migrations')`. */
export function projectPath(...segments: string[]): string {
  return path.join(PROJECT_ROOT, ...segments);
}

/** MaiHive's version, from its `package.json`. */
export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }
).version;
