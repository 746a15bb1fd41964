// The shape of grpc-service.mjs for the TypeScript tests that build clients from it.
import type { ServiceDefinition } from '@grpc/grpc-js';

export declare const CATALOGUE: ServiceDefinition;
