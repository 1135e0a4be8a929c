import { plainToInstance, Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const EMBEDDING_PROVIDERS = ['local'] as const;
export type EmbeddingProviderName = (typeof EMBEDDING_PROVIDERS)[number];

/** Raised for a bad environment; main() prints its one-line message and exits 1. */
export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigValidationError';
  }
}

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;

const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
};

/**
 * The environment as the service reads it. Each property is named after its variable so that
 * class-validator's messages name the variable the operator has to fix.
 */
class EnvironmentVariables {
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsOptional()
  @IsString()
  HOST = '0.0.0.0';

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'DATABASE_URL must be a postgres:// or postgresql:// URL' })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  DATA_DIR = './data';

  @IsOptional()
  @IsString()
  EMBEDDED_TEMPLATE?: string;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'DB_MIGRATE_ON_START must be true or false' })
  DB_MIGRATE_ON_START = false;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  DB_POOL_MAX = 10;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(600_000)
  DB_POOL_ACQUIRE_TIMEOUT_MS = 5000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3_600_000)
  DB_STATEMENT_TIMEOUT_MS = 30_000;

  @IsOptional()
  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevel = 'info';

  @IsOptional()
  @IsIn(EMBEDDING_PROVIDERS)
  EMBEDDINGS_PROVIDER: EmbeddingProviderName = 'local';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(8)
  @Max(16_000)
  EMBEDDINGS_DIMENSIONS = 384;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000)
  EMBEDDINGS_MAX_BATCH = 1000;

  @IsOptional()
  @IsString()
  @Matches(/^\S{1,255}$/, { message: 'DEFAULT_COLLECTION must be 1-255 characters without spaces' })
  DEFAULT_COLLECTION = 'docs';
}

export type DatabaseMode = 'embedded' | 'server';

/** The one typed configuration object; the app, the CLI and the tests all build it here. */
export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly database: {
    readonly mode: DatabaseMode;
    readonly url?: string;
    /** Where the embedded database keeps its files; `memory://` keeps nothing. */
    readonly dataDir: string;
    /** A PGlite data-directory dump that seeds a new embedded database (skips initdb). */
    readonly embeddedTemplate?: string;
    readonly migrateOnStart: boolean;
    readonly poolMax: number;
    readonly acquireTimeoutMs: number;
    readonly statementTimeoutMs: number;
  };
  readonly logLevel: LogLevel;
  readonly embeddings: {
    readonly provider: EmbeddingProviderName;
    readonly dimensions: number;
    readonly maxBatch: number;
    readonly defaultCollection: string;
  };
}

/** Injection token for AppConfig (an interface has no runtime value). */
export const APP_CONFIG = Symbol('APP_CONFIG');

export function loadAppConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  // Empty strings mean "unset", as they do in most .env files.
  const raw = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const vars = plainToInstance(EnvironmentVariables, raw, { exposeDefaultValues: true });
  const errors = validateSync(vars, { whitelist: false, skipMissingProperties: false });
  if (errors.length > 0) {
    throw new ConfigValidationError(
      errors.map((e) => Object.values(e.constraints ?? {})[0] ?? `${e.property} is invalid`),
    );
  }
  const url = vars.DATABASE_URL;
  return {
    port: vars.PORT,
    host: vars.HOST,
    database: {
      mode: url ? 'server' : 'embedded',
      url,
      dataDir: vars.DATA_DIR,
      embeddedTemplate: vars.EMBEDDED_TEMPLATE,
      // The embedded database belongs to this service alone, so it is always kept migrated.
      migrateOnStart: url ? vars.DB_MIGRATE_ON_START : true,
      poolMax: vars.DB_POOL_MAX,
      acquireTimeoutMs: vars.DB_POOL_ACQUIRE_TIMEOUT_MS,
      statementTimeoutMs: vars.DB_STATEMENT_TIMEOUT_MS,
    },
    logLevel: vars.LOG_LEVEL,
    embeddings: {
      provider: vars.EMBEDDINGS_PROVIDER,
      dimensions: vars.EMBEDDINGS_DIMENSIONS,
      maxBatch: vars.EMBEDDINGS_MAX_BATCH,
      defaultCollection: vars.DEFAULT_COLLECTION,
    },
  };
}

/** Loads `.env` from the working directory when there is one; real environment variables win. */
export function loadDotEnv(path = '.env'): void {
  try {
    process.loadEnvFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
