/**
 * Friendly names for the API's schemas, generated from ../openapi.yaml into `api.ts`.
 */
import type { components } from './api';

type Schemas = components['schemas'];

export type User = Schemas['UserProfile'];
export type UserPublic = Schemas['UserPublic'];
export type FoundUser = Schemas['FoundUser'];
export type Relation = Schemas['Relation'];
export type FriendRequest = Schemas['FriendRequestView'];
export type FriendRequestLists = Schemas['FriendRequestLists'];
export type Room = Schemas['RoomView'];
export type Message = Schemas['MessageView'];
export type MessagePage = Schemas['MessagePage'];
export type AuthResponse = Schemas['AuthResponse'];
export type TokenPair = Schemas['TokenPair'];
/** What the SPA keeps of a token pair: the tokens themselves (their lifetimes are in the JWTs). */
export type StoredTokens = Pick<TokenPair, 'access' | 'refresh'>;
export type ErrorCode = Schemas['ErrorCode'];
export type ErrorBody = Schemas['ErrorBody'];
