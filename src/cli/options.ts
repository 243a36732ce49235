import { InvalidArgumentError } from 'commander';

/** A flag's value as a whole number of at least `min`; commander reports a bad one as a usage error. */
export function parseWhole(min: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
    return Number(text);
  };
}

/** A flag's value as one of `values`. */
export function choice<T extends string>(name: string, values: readonly T[]) {
  return (text: string): T => {
    if (!(values as readonly string[]).includes(text)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}`);
    return text as T;
  };
}
