/* bcryptprimitives.dll for Wine 8.0, which lacks ProcessPrng: the Go runtime
 * (1.22 and later) calls it at start-up on Windows. Test environment only;
 * built and installed into a Wine prefix by .ci/windows, never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
	while (size > 0) {
		ULONG n = size > 0x10000000 ? 0x10000000 : (ULONG)size;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		size -= n;
	}
	return TRUE;
}
