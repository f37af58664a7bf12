/** A request's id: the caller's `x-request-id` when it is a plain token of at most 64 characters, else a new one. */
import { newId } from '@flurry/core';

const GIVEN_ID = /^[\w.-]{1,64}$/;

export function requestIdFrom(given: string | undefined): string {
  return given && GIVEN_ID.test(given) ? given : newId('req');
}
