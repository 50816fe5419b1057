/**
 * Built-in OperationDefinitions of the workflow operations (scheduling, prescriptions, lab
 * orders): served at [base]/OperationDefinition/[id] (not stored) and referenced from the
 * CapabilityStatement, with their url the address they are served at, so a client can always
 * resolve it. The operations' own lists are in appointments-opdefs.ts and medication-opdefs.ts.
 */
import type { OperationDefinition, OperationDefinitionParameter } from 'fhir/r4.js';

export type OperationParam = OperationDefinitionParameter;

/** One parameter of an operation. */
export const param = (name: string, use: 'in' | 'out', type: string, min: number, max: string, documentation: string, extra: Partial<OperationParam> = {}): OperationParam => ({
  name,
  use,
  min,
  max,
  type: type as OperationParam['type'],
  documentation,
  ...extra,
});

export interface OperationSpec {
  id: string;
  code: string;
  resource: string[];
  level: { system: boolean; type: boolean; instance: boolean };
  affectsState: boolean;
  description: string;
  parameter: OperationParam[];
}

export function operationDefinition(spec: OperationSpec, baseUrl: string): OperationDefinition {
  return {
    resourceType: 'OperationDefinition',
    id: spec.id,
    url: `${baseUrl}/OperationDefinition/${spec.id}`,
    name: spec.id.replace(/[^A-Za-z0-9]/g, ''),
    status: 'active',
    kind: 'operation',
    publisher: 'CareBridge',
    description: spec.description,
    affectsState: spec.affectsState,
    code: spec.code,
    resource: spec.resource as OperationDefinition['resource'],
    system: spec.level.system,
    type: spec.level.type,
    instance: spec.level.instance,
    parameter: spec.parameter,
  };
}
