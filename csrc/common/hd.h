// Host/device qualifiers shared by every *_math.h header. No torch includes here.
#pragma once

#if defined(__CUDACC__)
#define PYHPE_HD __host__ __device__
#define PYHPE_HD_INLINE __host__ __device__ __forceinline__
#else
#define PYHPE_HD
#define PYHPE_HD_INLINE inline
#endif
